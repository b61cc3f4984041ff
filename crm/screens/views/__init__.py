"""CRM screen views, one module per screen. Thin: forms validate, services change state."""
