"""How the operator, the trainer's pods and the model servers reach a policy's object storage.

``training.outputUri`` says where a policy's runs live: each run writes ``<outputUri>/<run>/`` with its
dataset snapshot (``dataset/``, written by the operator), checkpoints (``checkpoints/``), adapter
(``adapter/``) and manifest (written by the trainer), and the model servers read the adapter from there.
``training.storage`` says how each of them gets in. Three parties, one bucket:

- the operator reads the Secret named by ``secretRef`` (in the policy's namespace) and writes snapshots
  with it; without one it uses its own identity (its pod's ServiceAccount: IRSA / Workload Identity);
- the RayJob's head and worker pods get the Secret's keys as environment (``envFrom``), the endpoint
  and region as ``AWS_ENDPOINT_URL`` / ``AWS_DEFAULT_REGION``, and run under ``serviceAccountName``;
- the InferenceService's predictor runs under ``serviceAccountName``: KServe's storage initializer
  finds its credentials through the Secrets that ServiceAccount lists (KServe's own convention, with the
  ``serving.kserve.io/s3-endpoint`` annotations on the Secret; docs/storage.md shows both objects).

Credential keys by scheme (the names the fsspec back ends read from the environment):
``s3://`` AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN);
``gs://`` a service-account key file under the key ``credentials.json`` (mounted, and pointed at by
GOOGLE_APPLICATION_CREDENTIALS); ``az://`` AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME
with AZURE_STORAGE_ACCOUNT_KEY.

A ReadWriteMany volume is the documented alternative to a bucket: ``volume`` mounts one claim into the
trainer's pods at ``mountPath``, and ``outputUri`` is then ``file://<mountPath>/…`` (the operator's own
pod mounts the same claim at the same path: the chart's ``operator.dataVolume``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from controllers.api.common import KaizenModel, ObjectName, cel, endpoint_field

Region = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
MountPath = Annotated[str, StringConstraints(min_length=2, max_length=256, pattern=r"^/[A-Za-z0-9._/-]+$")]

# Where the trainer's pods find a gs:// key file from the Secret (GOOGLE_APPLICATION_CREDENTIALS).
GCS_KEY = "credentials.json"
SECRET_MOUNT = "/var/run/secrets/kaizen/storage"


class SharedVolume(KaizenModel):
    """A ReadWriteMany PersistentVolumeClaim the operator and the trainer's pods both mount."""

    claim_name: ObjectName = Field(
        description="PersistentVolumeClaim in the policy's namespace (ReadWriteMany)."
    )
    mount_path: MountPath = Field(
        default="/var/lib/kaizen", description="Where the pods mount it; outputUri is file://<mountPath>/…"
    )


class StorageAccess(KaizenModel):
    """How everyone reaches ``training.outputUri``: endpoint, credentials and service account."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.volume) || !has(self.endpoint)",
                "storage.volume is a shared filesystem: it takes no endpoint (that is for S3-compatible stores)",
            ),
        )
    )

    endpoint: str | None = endpoint_field(
        "S3-compatible endpoint (MinIO, Ceph RGW, R2, …), e.g. http://minio.storage:9000. Empty: the cloud's own."
    )
    region: Region | None = Field(default=None, description="Bucket region, e.g. eu-west-1 (s3:// only).")
    secret_ref: ObjectName | None = Field(
        default=None,
        description=(
            "Secret in this namespace with the store's credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            " for s3://; see docs/storage.md for gs:// and az://). Read by the operator, given to the trainer's"
            " pods as environment. Empty: every party uses its pod's own identity."
        ),
    )
    service_account_name: ObjectName | None = Field(
        default=None,
        description=(
            "ServiceAccount the trainer's pods and the model servers run under: IRSA or Workload Identity,"
            " or for KServe's storage initializer one that lists the credentials Secret."
        ),
    )
    volume: SharedVolume | None = Field(
        default=None,
        description="A ReadWriteMany claim instead of a bucket (outputUri file://<mountPath>/…).",
    )


def is_object_store(uri: str) -> bool:
    """Whether ``uri`` names a bucket (reached over the network with credentials), not a path."""
    return uri.split("://", 1)[0] in {"s3", "gs", "gcs", "az", "abfs"} if "://" in uri else False
