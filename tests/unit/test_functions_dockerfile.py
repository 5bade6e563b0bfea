"""The Lambda image (infra/Dockerfile.functions) cannot be built here: check that it installs what
every function's AWS entry point can import, and serves each of them."""

from __future__ import annotations

import re

import pytest

from local.lock import IMAGES, lock_entries
from local.package import reachable_files, unprovided, used_modules
from tests.conftest import REPO

DOCKERFILE = (REPO / "infra" / "Dockerfile.functions").read_text()
FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/aws.py"))
# Google Cloud's adapters: reachable (the store and the queues are chosen at run time) but never
# chosen on AWS, so the Lambda image leaves the gcp extra out.
GCP_ADAPTERS = {
    "shared/blob/gcs.py",
    "shared/queue/pubsub.py",
    "shared/queue/backlog_gcp.py",
    "shared/platform/metrics_gcp.py",
    "shared/store/credentials_gcp.py",
}


def test_every_function_folder_has_an_aws_entry_point() -> None:
    folders = sorted(p.name for p in (REPO / "functions").iterdir() if (p / "core.py").is_file())
    assert folders == FUNCTIONS and {"ingest", "embed", "api"} <= set(FUNCTIONS)
    # the database is private (nothing outside the VPC reaches it): pending migrations are applied
    # by the first cold start, under an advisory lock
    assert "CONTENTFN_MIGRATE_ON_START" not in DOCKERFILE


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_lambda_image_installs_every_package_the_function_can_import(function: str) -> None:
    # GIVEN the extras the image's lock is written with, and the lock the image installs
    spec = IMAGES["functions"]
    assert re.search(r"pip install [^\n]*--require-hashes -r \"\$\{LAMBDA_TASK_ROOT\}/requirements\.lock\"", DOCKERFILE)
    extras = list(spec.extras)
    also = sorted(lock_entries(REPO / spec.lock))
    # WHEN following every import the function's AWS handler can reach, Google Cloud's adapters aside
    code = reachable_files(REPO / "functions" / function / "aws.py", root=REPO)
    relative = {p.relative_to(REPO).as_posix() for p in code}
    used = used_modules([p for p in code if p.relative_to(REPO).as_posix() not in GCP_ADAPTERS], root=REPO)
    assert "aws_lambda_powertools" in {m.split(".")[0] for m in used}
    assert "shared/blob/s3.py" in relative and "boto3" in used
    # THEN the image provides each of them
    assert unprovided(REPO / "pyproject.toml", used, extras=extras) == {}
    assert unprovided(REPO / "pyproject.toml", used, extras=extras, also=also) == {}
