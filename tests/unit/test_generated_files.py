"""The committed CRDs and chart copies are exactly what the generator makes from controllers/api."""

from controllers import crdgen


def test_committed_crds_match_a_fresh_generation() -> None:
    stale = [str(path.relative_to(crdgen.ROOT)) for path in crdgen.stale_files()]
    assert not stale, f"generated files are stale: {stale}; regenerate with: {crdgen.REGENERATE}"


def test_generation_is_deterministic() -> None:
    assert crdgen.outputs() == crdgen.outputs()


def test_chart_copies_are_wrapped_in_the_install_toggle() -> None:
    for path, text in crdgen.outputs().items():
        if path.parent == crdgen.CHART_CRD_DIR:
            body = text.split("\n", 1)[1]
            assert body.startswith("{{- if .Values.crds.install }}\n"), path
            assert body.endswith("{{- end }}\n"), path
            assert "helm.sh/resource-policy: keep" in body, path


def test_check_mode_reports_a_hand_edit(tmp_path, monkeypatch, capsys) -> None:
    # Point the generator at a copy, edit one file, and expect --check to name it and the fix.
    monkeypatch.setattr(crdgen, "CRD_DIR", tmp_path / "crds")
    monkeypatch.setattr(crdgen, "CHART_CRD_DIR", tmp_path / "chart")
    monkeypatch.setattr(crdgen, "ROOT", tmp_path)
    assert crdgen.main([]) == 0
    assert crdgen.main(["--check"]) == 0
    edited = tmp_path / "crds" / "trainingruns.kaizen.dev.yaml"
    edited.write_text(edited.read_text().replace("maxLength: 253", "maxLength: 254", 1))
    assert crdgen.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "crds/trainingruns.kaizen.dev.yaml" in err
    assert "make generate" in err
