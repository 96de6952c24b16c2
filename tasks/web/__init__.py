"""target=web: the export as a TF.js graph model in a static, installable, offline page (steps.py), built by
bundle.py from page/ and the npm packages of js/ (package.json, lock file), checked in headless Chromium by
js/check.mjs; converter.py runs the tensorflowjs converter installed beside the pinned set."""
