# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

import setuptools

# The compiled accelerator of the reader and the shape miner
# (logrca.parsing.speedups) and the LSTM kernel of the deeplog detector
# (logrca.detectors._kernels). Optional: without a C compiler the build
# goes on and logrca uses its pure-Python/torch code (same results).
# pbr's setup.cfg [extension] sections cannot mark an extension optional,
# hence they are declared here.
SPEEDUPS = setuptools.Extension(
    'logrca.parsing._speedups',
    sources=['logrca/parsing/_speedups.c'],
    optional=True,
)
KERNELS = setuptools.Extension(
    'logrca.detectors._kernels',
    sources=['logrca/detectors/_kernels.c'],
    # Lets the compiler turn the clamps of the gates' exp into vector
    # selects (it changes no rounding and no floating-point environment).
    extra_compile_args=['-fno-trapping-math'],
    optional=True,
)

setuptools.setup(pbr=True, ext_modules=[SPEEDUPS, KERNELS])
