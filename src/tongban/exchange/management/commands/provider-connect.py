"""`tongban provider-connect DATASET ENDPOINT PUBLIC_KEY_HEX --by USERNAME`: serve a dataset
from its provider's own system (部门前置机), and print the platform key to give the provider.

The provider runs `python -m tongban.exchange.provider --generate-key` to get PUBLIC_KEY_HEX,
and starts with `--platform-public-key` set to the key this command prints (the trust list,
/api/v1/licenses/trust-list, publishes the same key as `platform_key`, base64url).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tongban.core.errors import TongbanError
from tongban.exchange import remote
from tongban.exchange.models import Dataset
from tongban.people.models import User


class Command(BaseCommand):
    help = "Serve a dataset from its provider's own system; print the platform's public key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="dataset code, e.g. population")
        parser.add_argument("endpoint", help="the provider's URL, e.g. https://host:8700/")
        parser.add_argument("public_key", help="the provider's Ed25519 public key, 64 hex digits")
        parser.add_argument("--by", required=True, help="username of a data administrator")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(code=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset {options['dataset']!r}")
        actor = User.objects.filter(username=options["by"]).first()
        if actor is None:
            raise CommandError(f"no user {options['by']!r}")
        try:
            public_key = bytes.fromhex(options["public_key"])
        except ValueError:
            raise CommandError("the public key is not hex") from None
        try:
            dataset = remote.dataset_provider_connect(
                dataset=dataset, endpoint=options["endpoint"], public_key=public_key, actor=actor
            )
        except TongbanError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(f"{dataset.code} is now served by {dataset.endpoint}")
        self.stdout.write(
            f"platform public key (the provider's --platform-public-key): "
            f"{remote.platform_public_key().hex()}"
        )
