# The config as the jobs read it, prepared in one call. `--config seeds=[1]` or
# `eval_subset={"size": 64}` hands over strings, so values are typed as the schema asks, the
# optional training and probe keys are filled in, every violation is named by its config key, and
# Snakemake's own validation (which fills in the schema's defaults) has the last word.
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from headplast.pipeline.config import ConfigError, prepare_config

SCHEMA = "../workflow/schemas/config.schema.yaml"  # relative to this file, as validate() reads it


def _prepare_config():
    """``config`` in place, prepared (headplast.pipeline.config.prepare_config) and validated."""
    try:
        prepared = prepare_config(
            config, workflow.source_path(SCHEMA), "workflow/schemas/config.schema.yaml"
        )
    except ConfigError as err:
        raise WorkflowError(str(err)) from None
    config.update(prepared)
    validate(config, SCHEMA)


_prepare_config()
