"""Resources pointing every store of the pipeline into a test's own folder."""

import pytest

from assets.resources import resources_from_settings
from models.distributed import DistributedConfig
from models.tracking import TrackingSettings
from pipelines.settings import StorageSettings


def local_resources(root, experiment="test", registered_model="earthgpt-test"):
    storage = StorageSettings(sample=str(root / "sample"), raw=str(root / "sample"), mmrs=str(root / "mmrs"),
                              models=str(root / "models"), eval=str(root / "eval"))
    tracking = TrackingSettings(uri=f"sqlite:///{root / 'mlflow.db'}", artifacts=str(root / "artifacts"),
                                experiment=experiment, registered_model=registered_model)
    return resources_from_settings(storage, tracking, DistributedConfig(precision="32-true"))


@pytest.fixture
def resources(tmp_path):
    return local_resources(tmp_path)


@pytest.fixture
def make_resources():
    return local_resources
