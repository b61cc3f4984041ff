"""The API's JSON parser: DRF's, with the nesting depth checked before parsing (the parser
recurses, and a 2 KB body of 1,000 ``[`` would otherwise overflow it into a 500)."""

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from crm.limits import JsonTooDeep, load_client_json


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return load_client_json(stream.read().decode(encoding))
        except JsonTooDeep as error:
            raise ParseError(
                _("JSON nested deeper than %(limit)d levels.") % {"limit": error.limit}
            ) from None
        except ValueError as error:
            raise ParseError(_("JSON parse error - %(detail)s") % {"detail": error}) from None
