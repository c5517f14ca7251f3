"""``ProjectCredentialsDataset``: the project's credentials, for a node that calls a service.

Kedro hands credentials to datasets only, and a catalog entry naming a credentials key
that is absent stops every run. The LLM judge is optional and its key may come from the
environment instead, so this read-only dataset gives a node the credentials entries
(``conf/base`` and ``conf/<env>``, ``credentials*`` files, as Kedro reads them) or ``{}``
when there are none; the node picks the entry its parameters name. Values never appear in
logs or descriptions, and nothing is ever saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.io import AbstractDataset, DatasetError

from anchormix_kedro.config import project_config


class ProjectCredentialsDataset(AbstractDataset[None, dict[str, Any]]):
    """Loads ``{entry name: entry}`` from the project's credentials files; read-only.

    ``conf_source`` is the configuration folder (relative to the working directory, the
    project root under ``kedro run``); ``env`` the run environment (default ``KEDRO_ENV``,
    else ``local``). Example catalog entry::

        judge_credentials:
          type: anchormix_kedro.datasets.project_credentials_dataset.ProjectCredentialsDataset
    """

    def __init__(
        self,
        conf_source: str = "conf",
        env: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._conf_source = conf_source
        self._env = env
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        if not Path(self._conf_source).is_dir():
            return {}
        loader = project_config(self._conf_source, self._env)
        try:
            credentials = loader["credentials"]
        except MissingConfigException:
            return {}
        return {str(name): entry for name, entry in dict(credentials or {}).items()}

    def save(self, data: None) -> None:
        raise DatasetError("ProjectCredentialsDataset is read-only: credentials are never saved")

    def _describe(self) -> dict[str, Any]:
        return {"conf_source": self._conf_source, "env": self._env}
