from mtl_aug.cli import main

raise SystemExit(main())
