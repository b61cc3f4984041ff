from tests.faults.conftest import need_redis_server  # noqa: F401 - the fixture, shared
