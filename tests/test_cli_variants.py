"""`prefixbench variants` lists the registry for people and (with --json) for machines."""
import json

from typer.testing import CliRunner

from cli import app
from prefixlm_attn.variants import DEFAULT_VARIANT, VARIANTS


def test_variants_json_lists_every_variant_with_its_contract():
    result = CliRunner().invoke(app, ["variants", "--json"])
    assert result.exit_code == 0, result.output
    entries = [e for e in json.loads(result.output) if e["kind"] == "variant"]
    names = [e["name"] for e in entries]
    assert names == list(VARIANTS)
    assert {"unguarded", "zeros_always", "guarded_zero_fill", "guarded_passthrough"} <= set(names)
    for e in entries:
        assert e["description"] and e["zero_fills"] and e["survives"] and "fails_on" in e
    recommended = [e["name"] for e in entries if e["recommended"]]
    assert recommended == [DEFAULT_VARIANT]


def test_variants_table_names_them():
    result = CliRunner().invoke(app, ["variants"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in VARIANTS:
        assert name in result.output
