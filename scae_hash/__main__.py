import sys

from scae_hash.cli import main

sys.exit(main())
