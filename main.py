"""GPT Explorer: `python main.py` opens the window; `python main.py export|trace ...` runs
headless. See README.md."""

import sys

from explorer.app import main

if __name__ == "__main__":
    sys.exit(main())
