"""The tx kinds the state machine understands and the closed vocabularies they use.

``KINDS`` is published as is by the RPC and CLI: kind -> one-line description. A kind
string never changes meaning; a new meaning gets a new kind or a new payload version.
Vocabulary values are stored on chain inside records: extend them, never rename.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

GOV_PROPOSE: Final = "gov.propose"
GOV_APPROVE: Final = "gov.approve"
GOV_REJECT: Final = "gov.reject"
IDENTITY_REGISTER: Final = "identity.register"
IDENTITY_REVOKE: Final = "identity.revoke"
IDENTITY_ROTATE: Final = "identity.rotate"
DATASET_REGISTER: Final = "dataset.register"
DATASET_ADD_VERSION: Final = "dataset.add_version"
GRANT_ISSUE: Final = "grant.issue"
GRANT_REVOKE: Final = "grant.revoke"
AUDIT_DATA_ACCESS: Final = "audit.data_access"
AUDIT_DATASET_DERIVATION: Final = "audit.dataset_derivation"
AUDIT_TRAINING_RUN: Final = "audit.training_run"
AUDIT_MODEL_REGISTRATION: Final = "audit.model_registration"
AUDIT_EVALUATION: Final = "audit.evaluation"
AUDIT_DEPLOYMENT: Final = "audit.deployment"
AUDIT_INFERENCE_BATCH: Final = "audit.inference_batch"
AUDIT_OVERSIGHT_INTERVENTION: Final = "audit.oversight_intervention"
AUDIT_INCIDENT_REPORT: Final = "audit.incident_report"
AUDIT_FEDERATED_ROUND: Final = "audit.federated_round"

KINDS: Final = MappingProxyType(
    {
        GOV_PROPOSE: "Propose adding or removing an organisation or a validator node (counts as the proposer organisation's approval).",
        GOV_APPROVE: "Approve an open governance proposal for the sender's organisation; it takes effect at quorum.",
        GOV_REJECT: "Reject an open governance proposal for the sender's organisation; it closes when quorum becomes unreachable.",
        IDENTITY_REGISTER: "An organisation admin registers a person's or app's key with a role (admin, steward, app, auditor).",
        IDENTITY_REVOKE: "An organisation admin revokes one of its identities; its keys stop being accepted.",
        IDENTITY_ROTATE: "An admin or the identity itself replaces the identity's key; the key epoch goes up by one.",
        DATASET_REGISTER: "A steward or admin registers a dataset of its organisation: content hash, location, sensitivity, licence or consent basis.",
        DATASET_ADD_VERSION: "A steward or admin of the owner adds a version of a dataset: new content hash and its parent version.",
        GRANT_ISSUE: "A steward or admin of the owner grants an organisation or identity the use of a dataset (or one version) for purposes within a validity window.",
        GRANT_REVOKE: "A steward or admin of the owner revokes a grant from the block time on.",
        AUDIT_DATA_ACCESS: "An actor read or exported data of a dataset for a purpose.",
        AUDIT_DATASET_DERIVATION: "A dataset was derived from others (cleaning, labelling, filtering, ...): input and output digests and code hash.",
        AUDIT_TRAINING_RUN: "A training or fine-tuning run started, completed or failed: datasets and their roles, code/config/environment hashes, output model digest.",
        AUDIT_MODEL_REGISTRATION: "A model version was registered: weights hash, parent models, training runs, model-card hash.",
        AUDIT_EVALUATION: "A model was evaluated or examined for bias: evaluation data digests, metric set, result hash.",
        AUDIT_DEPLOYMENT: "A model version was deployed, substantially modified or retired.",
        AUDIT_INFERENCE_BATCH: "A deployed model served a batch of inferences: count, input and output digests.",
        AUDIT_OVERSIGHT_INTERVENTION: "A human overseer intervened in a model's operation (review, override, halt, resume).",
        AUDIT_INCIDENT_REPORT: "A serious incident or malfunction involving a model or dataset was reported.",
        AUDIT_FEDERATED_ROUND: "A federated-learning round: participants, their update digests and the aggregate digest.",
    }
)
"""Every tx kind -> a one-line description."""

AUDIT_KINDS: Final = frozenset(k for k in KINDS if k.startswith("audit."))

KIND_CODES: Final = MappingProxyType({kind: i + 1 for i, kind in enumerate(KINDS)})
"""A stable small number per kind for compact records. Append-only, like ``KINDS``."""
KIND_BY_CODE: Final = MappingProxyType({code: kind for kind, code in KIND_CODES.items()})

ROLES: Final = ("admin", "steward", "app", "auditor")
PURPOSES: Final = (
    "training",
    "fine_tuning",
    "evaluation",
    "inference",
    "validation",
    "research",
    "analytics",
    "quality_control",
)
"""Purposes of data use a grant may allow and an event must name (EU AI Act Art. 10)."""
SENSITIVITY_CLASSES: Final = (
    "public",
    "internal",
    "confidential",
    "restricted",
    "special_category",
)
"""``special_category``: GDPR Art. 9 data (health, biometrics, ...)."""
DATASET_CONTEXTS: Final = ("training", "validation", "testing", "evaluation", "inference", "input")
"""The role of a dataset in a run; MLflow's ``mlflow.data.context`` values plus ours."""
RUN_EVENT_TYPES: Final = ("START", "RUNNING", "COMPLETE", "FAIL", "ABORT")
"""OpenLineage ``RunEvent.eventType``."""
DERIVATION_ACTIVITIES: Final = (
    "cleaning",
    "labelling",
    "filtering",
    "augmentation",
    "anonymisation",
    "aggregation",
    "sampling",
    "transformation",
)
EVALUATION_TYPES: Final = ("performance", "bias", "robustness", "safety", "fairness")
DEPLOYMENT_ACTIONS: Final = ("deploy", "substantial_modification", "rollback", "retire")
OVERSIGHT_ACTIONS: Final = ("review", "override", "halt", "resume", "escalate")
INCIDENT_SEVERITIES: Final = ("low", "medium", "high", "serious")
"""``serious``: a serious incident in the sense of EU AI Act Art. 73."""
GOV_ACTIONS: Final = ("add_org", "remove_org", "add_validator", "remove_validator")
ACCESS_TYPES: Final = ("read", "query", "export", "stream")

AUDIT_ROLES: Final = MappingProxyType(
    {
        kind: (
            frozenset(ROLES)
            if kind in (AUDIT_OVERSIGHT_INTERVENTION, AUDIT_INCIDENT_REPORT)
            else frozenset(("admin", "steward", "app"))
        )
        for kind in AUDIT_KINDS
    }
)
"""Which roles may post each audit event: auditors only report incidents and oversight."""
