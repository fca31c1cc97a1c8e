from au.cli import main

raise SystemExit(main())
