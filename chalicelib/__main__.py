import sys

from fraudtools.cli import main

sys.exit(main())
