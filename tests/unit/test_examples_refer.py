"""The shipped examples name only what the examples (or the cluster prerequisites) create.

Issue 22 found the example Experiment naming ShadowModel coder-dpo-0000, which nothing creates: applied
as shipped it could only wait for a model that never comes.
"""

from __future__ import annotations

from tests.schemas import load_examples


def test_every_object_an_example_names_is_an_example_too() -> None:
    examples = load_examples()
    created = {(kind, doc["metadata"]["name"]) for kind, doc in examples.items()}
    named: set[tuple[str, str]] = set()
    for variant in examples["Experiment"]["spec"]["variants"]:
        if "shadowModel" in variant:
            named.add(("ShadowModel", variant["shadowModel"]))
    for kind in ("ShadowModel", "Experiment", "TrainingRun"):
        spec = examples[kind]["spec"]
        if "policyRef" in spec:
            named.add(("LearningPolicy", spec["policyRef"]))
    if "trainingRunRef" in examples["ShadowModel"]["spec"]:
        named.add(("TrainingRun", examples["ShadowModel"]["spec"]["trainingRunRef"]))
    assert named, "the examples name nothing: this test lost its subject"
    assert named <= created, f"named but never created by an example: {sorted(named - created)}"


def test_the_example_experiment_tests_the_example_model_against_the_shared_base() -> None:
    examples = load_examples()
    variants = {v["role"]: v for v in examples["Experiment"]["spec"]["variants"]}
    model = examples["ShadowModel"]
    assert variants["Challenger"]["shadowModel"] == model["metadata"]["name"]
    base = model["spec"]["serving"]["sharedBase"]
    assert variants["Champion"]["endpoint"].startswith(f"http://{base}-predictor.")
    assert variants["Champion"]["model"] == model["spec"]["baseModel"]["name"]
