import sys

from noisereg.lab.cli import main

sys.exit(main())
