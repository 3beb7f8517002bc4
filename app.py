#!/usr/bin/env python3
"""CDK entry point: `python app.py` or `npx cdk synth` writes cdk.out/."""

import os

from infra.app import build_app

build_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out")).synth()
