"""CONTRACT 6's access rules against a real smbd on the host, configured by nasbox."""
import pytest

from tests.support.access_matrix import AccessMatrix

pytestmark = pytest.mark.host


class TestHostSmbd(AccessMatrix):
    pass
