# The named input and param functions the rules call: each reads the part of the config one job
# uses (its data, model, hyper-parameters, start), so a change elsewhere in the config reruns
# nothing of it.
import os

from snakemake.exceptions import WorkflowError

from headplast.data.tasks import GLUE_TASKS
from headplast.pipeline.config import canonical

SYNTHETIC_LABELS = ["entailment", "neutral", "contradiction"]


def get_model_path(wildcards):
    """The pre-trained model this `{model}` names: hub id or local folder."""
    return MODELS[wildcards.model]


def get_trust_remote_code(wildcards):
    return bool(config["models"][wildcards.model]["trust_remote_code"])


def get_model_files(wildcards):
    """A local model folder's files are inputs (editing them reruns); hub ids have none."""
    path = MODELS[wildcards.model]
    if os.path.isdir(path):
        return [
            os.path.join(path, "config.json"),
            os.path.join(path, "model.safetensors"),
        ]
    return []


def data_config(task):
    return config["tasks"][task]["data"]


def get_data_inputs(wildcards):
    """Files prepare_data reads: local files, generated data, or nothing (hub)."""
    spec = data_config(wildcards.task)
    if spec["source"] == "local":
        return [spec["train"], spec["validation"]]
    if spec["source"] == "synthetic":
        return expand(
            data_path("synthetic/{split}.jsonl"),
            task=wildcards.task,
            split=["train", "validation"],
        )
    return []


def get_data_spec(wildcards):
    """The task's data block as prepare_data consumes it (generated data = local files)."""
    return canonical(_data_spec(wildcards))


def _data_spec(wildcards):
    spec = dict(data_config(wildcards.task))
    if spec["source"] == "synthetic":
        train, validation = get_data_inputs(wildcards)
        return {
            "source": "local",
            "train": train,
            "validation": validation,
            "format": "jsonl",
            "columns": {
                "premise": "premise",
                "hypothesis": "hypothesis",
                "label": "label",
            },
            "label_names": SYNTHETIC_LABELS,
        }
    if spec["source"] == "glue":
        spec.setdefault("validation_split", GLUE_TASKS[spec["name"]].validation_split)
    return spec


def get_synthetic_params(wildcards):
    spec = data_config(wildcards.task)
    if spec["source"] != "synthetic":
        raise WorkflowError(f"task {wildcards.task} does not use generated data")
    return canonical({k: spec[k] for k in ("n_train", "n_validation", "seed")})


def get_num_labels(wildcards):
    spec = data_config(wildcards.task)
    if spec["source"] == "glue":
        return GLUE_TASKS[spec["name"]].n_labels
    if spec["source"] == "local":
        return len(spec["label_names"])
    return len(SYNTHETIC_LABELS)


def get_train_params(wildcards):
    """This task's training hyper-parameters under the job's method: changing them reruns this
    task alone. Full fine-tuning's are `tasks.<task>.train` as they are (so its params, and its
    runs, are those of a workflow without methods); LoRA's add `lora.train`'s overrides, `method`
    and the LoRA settings (get_lora), so a change to `lora:` reruns the LoRA runs alone.
    """
    train = config["tasks"][wildcards.task]["train"]
    method = METHOD_OF_DIR[wildcards.method]
    if method == "full":
        return canonical(train)
    lora = get_lora(wildcards.model, wildcards.task)
    hparams = {**train, **lora.pop("train"), "method": method, "lora": lora}
    return canonical(hparams)


def get_lora(model, task):
    """The LoRA settings of a model and task: headplast.train.defaults.LORA_DEFAULTS < the
    top-level `lora:` < `models.<model>.lora` < `tasks.<task>.lora`, key by key (`train:` too).
    """
    from headplast.train.defaults import LORA_DEFAULTS

    levels = [
        {**LORA_DEFAULTS, "train": {}},
        config.get("lora") or {},
        config["models"][model].get("lora") or {},
        config["tasks"][task].get("lora") or {},
    ]
    out = {}
    for level in levels:
        for key, value in level.items():
            out[key] = {**out.get(key, {}), **value} if key == "train" else value
    out["target"] = list(out["target"])
    return out


def get_selection_params(wildcards):
    """This task's `selection:` settings (the top-level block, then `tasks.<task>.selection`):
    changing them reruns the fine-tunes and the probe of this task and what follows."""
    spec = {
        **config["selection"],
        **config["tasks"][wildcards.task].get("selection", {}),
    }
    return canonical(spec)


def get_probe_params(wildcards):
    """The `probe:` block: changing it reruns the probe start's jobs only."""
    return canonical(config["probe"])


def get_seed(wildcards):
    return int(wildcards.seed)


def checkpoint_spec(task):
    return config["tasks"][task]["checkpoints"]


def get_checkpoint_source(wildcards):
    """theta1 of a `checkpoints:` task: hub id or local folder (`package:` resolved)."""
    if wildcards.model not in TASK_MODELS[wildcards.task]:
        raise WorkflowError(
            f"task {wildcards.task} imports a fine-tune of model {TASK_MODELS[wildcards.task][0]} "
            f"(`tasks.{wildcards.task}.checkpoints.model`), not of {wildcards.model}"
        )
    return resolve_model(checkpoint_spec(wildcards.task)["final"])


def get_checkpoint_files(wildcards):
    """A local checkpoint folder's files are inputs (replacing them reruns); hub ids have none."""
    path = get_checkpoint_source(wildcards)
    if os.path.isdir(path):
        return [os.path.join(path, f) for f in ("config.json", "model.safetensors")]
    return []


def get_label_map(wildcards):
    return canonical(checkpoint_spec(wildcards.task).get("label_map"))


def get_start_inputs(wildcards):
    """Extra inputs of a start's fine-tuning: the probe record for `probe` (into run_config)."""
    if wildcards.start == "probe":
        return {"probe": seed_path("probe.json")}
    return {}


def shared_encoder_source(wildcards):
    """theta0 of the first seed's random start: its encoder is every theta0's encoder (the shared
    theta0 sweep and the probe features are computed with it)."""
    return {
        k: v.format(model=wildcards.model, task=wildcards.task, seed=SEEDS[0])
        for k, v in ckpt_input("init", start="random").items()
    }
