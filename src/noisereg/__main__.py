import sys

from noisereg.cli import main

sys.exit(main())
