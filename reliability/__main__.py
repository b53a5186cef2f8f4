"""``python -m reliability [--quick] [--out FILE]``: the reliability campaign
(``reliability/campaign.py``)."""
import sys

from reliability.campaign import main

if __name__ == "__main__":
    sys.exit(main())
