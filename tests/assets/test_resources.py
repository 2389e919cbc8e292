"""Resources mirror the settings they are built from, field for field."""

import pytest

from assets.resources import ComputeResource, StorageResource, TrackingResource, resources_from_settings
from mmrs.settings import field_types
from models.distributed import DistributedConfig
from models.tracking import TrackingSettings
from pipelines.settings import StorageSettings


@pytest.mark.parametrize(("resource", "settings"), [(StorageResource, StorageSettings),
                                                    (TrackingResource, TrackingSettings),
                                                    (ComputeResource, DistributedConfig)])
def test_resource_fields_are_the_settings_fields(resource, settings):
    assert list(resource.model_fields) == list(field_types(settings))


def test_resources_give_back_the_settings(tmp_path):
    tracking = TrackingSettings(uri="http://127.0.0.1:5000", artifacts=None, experiment="e", registered_model="m")
    compute = DistributedConfig(strategy="auto", precision="32-true", gradient_accumulation=4)
    resources = resources_from_settings(StorageSettings(models=str(tmp_path)), tracking, compute)
    assert resources["tracking"].settings == tracking and resources["compute"].distributed == compute
    assert resources["storage"].layout.final_model == f"{tmp_path}/stage3/model"


def test_a_run_overriding_one_field_keeps_the_profile_values_of_the_others(tmp_path):
    import dagster as dg

    resources = resources_from_settings(StorageSettings(models=str(tmp_path / "m"), mmrs=str(tmp_path / "x")),
                                        TrackingSettings(), DistributedConfig())
    seen = {}

    @dg.asset
    def probe(storage: StorageResource) -> None:
        seen.update(models=storage.models, mmrs=storage.mmrs)

    dg.materialize([probe], resources=resources,
                   run_config={"resources": {"storage": {"config": {"mmrs": str(tmp_path / "y")}}}})
    assert seen == {"models": str(tmp_path / "m"), "mmrs": str(tmp_path / "y")}
