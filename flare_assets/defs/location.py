"""What a code location's definitions are built with, as one value its runs take."""

from dataclasses import dataclass

from flare_assets.defs.keys import DEFAULT_KEYS, AssetKeys
from flare_assets.depots import DepotMap
from flare_assets.settings import Settings


@dataclass(frozen=True)
class Location:
    """The depot map, the settings and the asset keys definitions were built with: their runs use
    these, not the environment at run time."""

    depots: DepotMap
    settings: Settings
    keys: AssetKeys = DEFAULT_KEYS
