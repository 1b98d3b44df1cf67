"""`sam3 export onnx`: writes the graphs and manifest.json, names what it refuses and why."""

from __future__ import annotations

import json

import pytest
from sam3_sdk.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_export_command_writes_click_graphs_and_manifest(edgetam_dir, tmp_path, capsys):
    code = main(
        [
            "export",
            "onnx",
            "--model",
            str(edgetam_dir),
            "--out",
            str(tmp_path),
            "--parts",
            "click_decoder",
            "--no-fp16",
        ]
    )
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["graphs"]) == {"click_decoder", "click_decoder_single"}
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == [
        "click_decoder.onnx",
        "click_decoder_single.onnx",
    ]
    assert (
        manifest["preprocessing"]["image"]["size"] == [manifest["preprocessing"]["points"]["target_size"]] * 2
    )
    assert "click_decoder: click_decoder.onnx" in capsys.readouterr().out


def test_export_command_refuses_a_part_the_model_lacks(edgetam_dir, tmp_path, capsys):
    code = main(
        ["export", "onnx", "--model", str(edgetam_dir), "--out", str(tmp_path), "--parts", "concept_heads"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "refused: concept_heads: EdgeTAM is a point/box tracker: it has no text encoder" in err


def test_export_command_rejects_an_unknown_part(tmp_path, capsys):
    assert (
        main(["export", "onnx", "--model", "tiny-random", "--out", str(tmp_path), "--parts", "decoder"]) == 2
    )
    assert "invalid choice: 'decoder'" in capsys.readouterr().err


def test_sam3_help_lists_export(capsys):
    main(["--help"])
    assert "export the models as ONNX graphs" in capsys.readouterr().out
