# CMake toolchain file: cross-compile for aarch64 Linux with Debian's cross compiler
# (crossbuild-essential-arm64), libraries from its sysroot /usr/aarch64-linux-gnu; host programs
# (the build's Python, which only locates nanobind and nlohmann-json) and header-only CMake
# packages are taken from the host. Used by scripts/test-arm-python.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
