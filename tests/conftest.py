"""Suite-wide settings: tests never download (every loader fails fast instead)."""
import os

os.environ["ONEBIT_NO_DOWNLOAD"] = "1"
