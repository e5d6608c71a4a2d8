"""The OCI image a Kubernetes environment runs for a release (docs/targets.md, Kubernetes).

One function answers it, so that the rest of the target does not care where the name comes
from: the name `relman build --image` gives the release's image
(``localhost/relman/SERVICE:RELEASE``, core/build/image.py), or the same name in the
environment's ``image_registry`` (where it was pushed). An image in ``localhost`` is only
usable when this machine's image store holds it (a single-node cluster sharing it); when
it does not, the release has no image to run and the promotion stops before it starts
anything, with the command that builds one.
"""

from __future__ import annotations

import shutil
import subprocess

from core.config.model import KubernetesConfig
from core.errors import BlockedError

# How long asking the local image store may take (podman starts in about 0.1 s).
_STORE_TIMEOUT = 20.0


def image_name(service: str, release: str, config: KubernetesConfig) -> str:
    """The image of ``release``: the name `relman build --image` gives it
    (``localhost/relman/SERVICE:RELEASE``), in ``image_registry`` when one is set."""
    from core.build.image import image_ref

    local = image_ref(service, release)
    if not config.image_registry:
        return local
    return f"{config.image_registry.rstrip('/')}/{local.split('/', 1)[1]}"


def release_image(service: str, release: str, env: str, config: KubernetesConfig) -> str:
    """The image ``release`` of ``service`` runs as in ``env``; BlockedError (exit 1)
    naming `relman build --image` when there is none."""
    image = image_name(service, release, config)
    if config.image_registry:
        return image  # pushed there; a cluster that cannot pull it says so (ImagePullBackOff)
    if _in_local_store(image):
        return image
    raise BlockedError(
        f"no image of {service} {release} for {env}: {image} is not in this machine's image "
        f"store; build it with `relman build {service} --image`, or set image_registry in "
        f"[environments.{env}.kubernetes] to the registry it was pushed to"
    )


def _in_local_store(image: str) -> bool:
    """Whether podman's (else docker's) image store here holds ``image``."""
    for tool, command in (
        ("podman", ["image", "exists", image]),
        ("docker", ["image", "inspect", "--format", "{{.Id}}", image]),
    ):
        path = shutil.which(tool)
        if path is None:
            continue
        try:
            done = subprocess.run(
                [path, *command],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_STORE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return True
    return False
