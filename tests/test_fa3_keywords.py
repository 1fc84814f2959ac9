"""Our FA3 calls use the op schema's own keyword names, and pass every argument it requires (CPU only:
the schema strings come from the FA3 source, tests/fixtures/fa3_op_schema.json)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prefixlm_attn.backends.fa3 import FA3Backend

SCHEMAS = json.loads((Path(__file__).parent / "fixtures" / "fa3_op_schema.json").read_text())


class RecordingOps:
    """Stands in for torch.ops.flash_attn_3: records each call's keywords, refuses positional arguments."""

    def __init__(self) -> None:
        self.calls: dict[str, dict] = {}

    def _record(self, name: str, args: tuple, kwargs: dict) -> tuple:
        assert args == (), f"{name} called with {len(args)} positional arguments"
        self.calls[name] = kwargs
        return (None, torch.zeros(1), None, None, None)

    def fwd(self, *args, **kwargs):
        return self._record("fwd", args, kwargs)

    def bwd(self, *args, **kwargs):
        return self._record("bwd", args, kwargs)


def _calls(kernel) -> dict[str, dict]:
    ops = RecordingOps()
    kernel._ops = ops
    t = torch.zeros(4, 2, 8)
    cu = torch.tensor([0, 4], dtype=torch.int32)
    where = dict(cu_seqlens_q=cu, cu_seqlens_k=cu, seqused_q=None, seqused_k=None, max_seqlen_q=4,
                 max_seqlen_k=4, causal=True, softmax_scale=0.5)
    kernel.forward(t, t, t, t, **where)
    kernel.backward(t, t, t, t, t, torch.zeros(2, 4), t, t, t, **where)
    return ops.calls


def _schema_names(text: str) -> tuple[set[str], set[str]]:
    """(every argument name, the names without a default) of one schema string."""
    schema = torch._C.parse_schema(text)
    return ({a.name for a in schema.arguments},
            {a.name for a in schema.arguments if not a.has_default_value()})


@pytest.mark.parametrize("kernel, schemas", [(FA3Backend(), "upstream")])
@pytest.mark.parametrize("op", ["fwd", "bwd"])
def test_fa3_is_called_with_schema_keywords_and_every_required_argument(kernel, schemas, op):
    names, required = _schema_names(SCHEMAS[schemas][op])
    passed = set(_calls(kernel)[op])
    assert passed <= names, f"{op}: not in the schema: {sorted(passed - names)}"
    assert required <= passed, f"{op}: required but not passed: {sorted(required - passed)}"


def test_the_check_sees_a_misspelt_keyword():
    names, required = _schema_names(SCHEMAS["upstream"]["fwd"])
    assert "causal" not in names and "is_causal" in names
    assert required == {"q", "k", "v"}
