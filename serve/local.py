"""Run the shopsense Serve app on this machine exactly as `serve deploy serve/config.yaml` would.

    from serve.local import start, deploy
    url = start({"store": {"sqlite_path": "x.sqlite"}}, port=8000)   # ray.init() + deploy, returns base URL
    deploy(same_settings, models_version="2")                          # Encoders load new checkpoints in place

The app is deployed declaratively, from config.yaml with the given settings merged into its
`args`: the same code path as `serve deploy`, so a later deploy that changes only the Encoder's
`user_config` updates running replicas in place (no restart, no failed request) instead of
rolling out new ones. Used by `shopsense serve`, the demo, the benchmark and the end-to-end tests.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from shopsense.config import Settings

CONFIG = Path(__file__).with_name("config.yaml")
APP_NAME = "shopsense"


def app_config(settings: dict | None = None, replicas: dict[str, int] | None = None,
               models_version: str | None = None, config_path: Path = CONFIG) -> dict:
    """The application of config.yaml with settings overrides merged into its args, fixed replica
    counts where given, and the Encoder's models version (its user_config) where given."""
    application = yaml.safe_load(config_path.read_text())["applications"][0]
    merged = dict(application.setdefault("args", {}).get("settings") or {})
    for section, values in (settings or {}).items():
        merged[section] = {**merged.get(section, {}), **values} if isinstance(values, dict) else values
    # Replicas may run in another working directory: pin relative paths to this one.
    resolved = Settings.load(overrides=merged)
    merged["artifacts_dir"] = str(resolved.artifacts.resolve())
    merged.setdefault("store", {})["sqlite_path"] = str(Path(resolved.store.sqlite_path).resolve())
    application["args"]["settings"] = merged
    deployments = {d["name"]: d for d in application.get("deployments", [])}
    for name, count in (replicas or {}).items():
        deployments[name].pop("autoscaling_config", None)
        deployments[name]["num_replicas"] = count
    if models_version is not None:
        deployments["Encoder"]["user_config"] = {"models_version": models_version}
    return application


def start(settings: dict | None = None, port: int = 8000, replicas: dict[str, int] | None = None,
          num_cpus: int | None = None, models_version: str | None = None) -> str:
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    deploy(settings, replicas, models_version)
    return f"http://127.0.0.1:{port}"


def deploy(settings: dict | None = None, replicas: dict[str, int] | None = None, models_version: str | None = None,
           timeout_s: float = 900) -> None:
    """Apply the config to the running Serve instance (what `serve deploy` sends) and wait until it runs."""
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    client = _get_global_client()
    client.deploy_apps(ServeDeploySchema(applications=[app_config(settings, replicas, models_version)]))
    client._wait_for_application_running(APP_NAME, timeout_s=timeout_s)


def stop() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
