#!/bin/sh
# test_sim_seeds.sh: the CI seed sweep (ci/seeds.sh) as part of make test.
exec sh ci/seeds.sh
