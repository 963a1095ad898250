"""The HCL adapter: python-hcl2's tree read as plain values (references, calls, templates, objects)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsdeck.adapters.hcl import installed_modules, read_file, read_tfvars
from opsdeck.core.types.hcl import Call, HclError, Index, Opaque, Ref, Template, refs, shown


def attrs(tmp_path: Path, body: str) -> dict[str, object]:
    path = tmp_path / "main.tf"
    path.write_text(f'module "m" {{\n{body}\n}}\n')
    [block] = read_file(path)
    return dict(block.attrs)


def test_expressions_come_back_as_structure(tmp_path: Path) -> None:
    found = attrs(
        tmp_path,
        """
        a = var.images["web"]
        b = lookup(var.images, "api", null)
        c = "web-${var.env}-$${literal}"
        d = merge(local.tags, { Name = "x", "team" = 1 })
        e = aws_launch_template.this[0].latest_version
        f = var.images[each.key]
        g = var.on ? var.a : data.aws_ami.base.id
        h = [true, 1.5, "s"]
        """,
    )
    assert found["a"] == Ref(("var", "images", "web"))
    assert found["b"] == Call("lookup", (Ref(("var", "images")), "api", None))
    assert found["c"] == Template(("web-", Ref(("var", "env")), "-${literal}"))
    assert found["d"] == Call("merge", (Ref(("local", "tags")), {"Name": "x", "team": 1}))
    assert found["e"] == Ref(("aws_launch_template", "this", 0, "latest_version"))
    assert found["f"] == Index(Ref(("var", "images")), Ref(("each", "key")))
    opaque = found["g"]
    assert isinstance(opaque, Opaque) and opaque.text == "var.on ? var.a : data.aws_ami.base.id"
    assert [r.text for r in refs(opaque)] == ["var.on", "var.a", "data.aws_ami.base.id"]
    assert found["h"] == (True, 1.5, "s")
    assert shown(found["b"]) == 'lookup(var.images, "api", null)'  # type: ignore[arg-type]


def test_blocks_keep_their_labels_and_dynamic_content(tmp_path: Path) -> None:
    path = tmp_path / "asg.tf"
    path.write_text(
        'resource "aws_autoscaling_group" "this" {\n'
        '  dynamic "tag" {\n    for_each = var.tags\n    content {\n      key = tag.key\n    }\n  }\n'
        '  tag {\n    key = "a"\n  }\n}\n'
    )
    [block] = read_file(path, "asg.tf")
    assert (block.type, block.labels, block.file) == ("resource", ("aws_autoscaling_group", "this"), "asg.tf")
    assert [b.attrs["key"] for b in block.children("tag")] == ["a", Ref(("tag", "key"))]


def test_tfvars_in_hcl_and_json(tmp_path: Path) -> None:
    (tmp_path / "a.tfvars").write_text('web_ami = "ami-1"\nimages = { api = "ami-2" }\n')
    (tmp_path / "b.tfvars.json").write_text(json.dumps({"web_ami": "ami-3", "zones": ["a", "b"]}))
    assert read_tfvars(tmp_path / "a.tfvars") == {"web_ami": "ami-1", "images": {"api": "ami-2"}}
    assert read_tfvars(tmp_path / "b.tfvars.json") == {"web_ami": "ami-3", "zones": ("a", "b")}


def test_a_file_it_cannot_parse_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "bad.tf").write_text('resource "x" "y" {\n  a = \n}\n')
    with pytest.raises(HclError) as raised:
        read_file(tmp_path / "bad.tf", "envs/qa/bad.tf")
    assert str(raised.value).startswith("envs/qa/bad.tf:") and "\n" not in str(raised.value)
    (tmp_path / "bad.tfvars.json").write_text("[1]")
    with pytest.raises(HclError, match="expected a JSON object"):
        read_tfvars(tmp_path / "bad.tfvars.json")


def test_installed_modules_reads_what_terraform_init_recorded(tmp_path: Path) -> None:
    assert installed_modules(tmp_path) == {}
    modules = tmp_path / ".terraform" / "modules"
    modules.mkdir(parents=True)
    entries = [{"Key": "", "Dir": "."}, {"Key": "web.asg", "Source": "x", "Dir": ".terraform/modules/web.asg"}]
    (modules / "modules.json").write_text(json.dumps({"Modules": entries}))
    assert installed_modules(tmp_path)["web.asg"] == tmp_path / ".terraform/modules/web.asg"
