"""Classical baseline systems: openSMILE functionals + SVM, run by the same evaluation commands as the
neural systems (``cv``, ``cross``, ``noise``) and written in the same formats."""
