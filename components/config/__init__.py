"""The stack configuration: typed models, validated before any resource is registered.

Values live in ``stacks/Pulumi.<stack>.yaml`` under the ``wapconnector`` namespace (camelCase keys); a bad value
stops the program with a :class:`~providers.errors.ConfigurationError`, one line per problem, naming the config key
and what to set instead. Five parts:

  models        the typed models (:class:`StackConfig` and its sections; a host's settings are HostConnection's)
  checks        the rules across keys, reported together with the field errors
  certificates  the operator's connector certificates: their keys, and their files read and judged locally
  plaintext     every password must be a Pulumi secret
  loading       the running stack's values -> :class:`StackConfig`, or every problem at once
"""

from providers.errors import ConfigurationError

from .certificates import OperatorCertificate, certificate_problems, operator_certificate
from .loading import load_stack_config, parse_stack_config
from .models import (
    NAMESPACE,
    AzureStackConfig,
    BundleConfig,
    CaConfig,
    CertificateSource,
    CloudConfig,
    ConnectorCertificateConfig,
    CredentialConfig,
    HostConfig,
    LabsimConfig,
    StackConfig,
)
from .plaintext import SECRET_KEYS, plain_text_paths, plaintext_secrets

__all__ = [
    "NAMESPACE",
    "SECRET_KEYS",
    "AzureStackConfig",
    "BundleConfig",
    "CaConfig",
    "CertificateSource",
    "CloudConfig",
    "ConfigurationError",
    "ConnectorCertificateConfig",
    "CredentialConfig",
    "HostConfig",
    "LabsimConfig",
    "OperatorCertificate",
    "StackConfig",
    "certificate_problems",
    "load_stack_config",
    "operator_certificate",
    "parse_stack_config",
    "plain_text_paths",
    "plaintext_secrets",
]
