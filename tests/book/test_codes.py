"""The compiled core and the Python side speak the same numbers and record layouts."""
import matching.constants as C
from matching import _core
from matching.records import COMMAND_DTYPE, EVENT_DTYPE


def test_every_core_code_equals_its_python_enum():
    for enum_name, members in _core.CODES.items():
        enum = getattr(C, enum_name)
        assert {m.name: m.value for m in enum} == members, enum_name


def test_command_and_event_records_have_the_c_layout():
    assert _core.SIZEOF_COMMAND == COMMAND_DTYPE.itemsize
    assert _core.SIZEOF_EVENT == EVENT_DTYPE.itemsize


def test_order_quantity_ceiling_is_shared():
    assert _core.MAX_ORDER_QTY == C.MAX_ORDER_QTY


def test_a_resting_order_fits_in_48_bytes():
    # 96 bytes per resting order is the budget; the pool slot is half of it.
    assert _core.SIZEOF_ORDER == 48
