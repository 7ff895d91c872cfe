# External-project builds of the plugins (see the top-level CMakeLists) and the C ABI test under CTest.
include(ExternalProject)

string(REPLACE ";" "|" vt_plugin_archs "${CMAKE_CUDA_ARCHITECTURES}")  # VT_CUDA_ARCHS, resolved
set(vt_plugin_args
  -DVT_PLUGIN_INCLUDE_DIR=${CMAKE_SOURCE_DIR}/core/include
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM})
if(VT_CCACHE)
  list(APPEND vt_plugin_args -DCMAKE_C_COMPILER_LAUNCHER=${VT_CCACHE} -DCMAKE_CXX_COMPILER_LAUNCHER=${VT_CCACHE}
       -DCMAKE_CUDA_COMPILER_LAUNCHER=${VT_CCACHE})
endif()

ExternalProject_Add(vt_reference_plugins
  SOURCE_DIR ${CMAKE_SOURCE_DIR}/plugins/reference
  BINARY_DIR ${CMAKE_BINARY_DIR}/plugins/reference
  LIST_SEPARATOR |
  CMAKE_ARGS ${vt_plugin_args} -DVT_REF_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER=${CMAKE_CUDA_COMPILER}
             -DCMAKE_CUDA_ARCHITECTURES=${vt_plugin_archs}
  INSTALL_COMMAND ""
  BUILD_ALWAYS ON)
ExternalProject_Add(vt_bad_plugins
  SOURCE_DIR ${CMAKE_SOURCE_DIR}/tests/fixtures/bad_plugins
  BINARY_DIR ${CMAKE_BINARY_DIR}/plugins/bad
  CMAKE_ARGS ${vt_plugin_args}
  INSTALL_COMMAND ""
  BUILD_ALWAYS ON)

# The C ABI test links the core (no Python) and loads the plugins built above.
add_executable(vt_abi_test ${CMAKE_SOURCE_DIR}/tests/abi/abi_test.cpp)
target_link_libraries(vt_abi_test PRIVATE vt_core)
target_include_directories(vt_abi_test PRIVATE ${CMAKE_SOURCE_DIR}/core/src/abi)
target_compile_definitions(vt_abi_test PRIVATE VT_ABI_TEST_PLUGINS="${CMAKE_BINARY_DIR}/plugins")
add_dependencies(vt_abi_test vt_reference_plugins vt_bad_plugins)
enable_testing()
add_test(NAME plugin_abi COMMAND vt_abi_test)

# The ring allreduce plugin (the Fabric's "ring" backend) ships with the package when the CUTLASS headers are
# there (the nvidia-cutlass wheel, a build requirement); without them the build says so and the backend reports
# that it was not built.
if(NOT VT_CUTLASS_INCLUDE_DIR)
  execute_process(COMMAND "${Python_EXECUTABLE}" -c
                  "import cutlass_library, os; print(os.path.join(os.path.dirname(cutlass_library.__file__), 'source', 'include'))"
                  OUTPUT_VARIABLE VT_CUTLASS_INCLUDE_DIR OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(EXISTS "${VT_CUTLASS_INCLUDE_DIR}/cutlass/array.h")
  if(SKBUILD)
    set(vt_ring_dest ${CMAKE_BINARY_DIR}/plugins/ring_install)
    install(DIRECTORY ${vt_ring_dest}/ DESTINATION vibetensor/plugins)
  else()
    set(vt_ring_dest ${CMAKE_SOURCE_DIR}/python/vibetensor/plugins)  # next to the developer build's _C
  endif()
  ExternalProject_Add(vt_ring_plugin
    SOURCE_DIR ${CMAKE_SOURCE_DIR}/plugins/ring_allreduce
    BINARY_DIR ${CMAKE_BINARY_DIR}/plugins/ring
    LIST_SEPARATOR |
    CMAKE_ARGS ${vt_plugin_args} -DCMAKE_CUDA_COMPILER=${CMAKE_CUDA_COMPILER}
               -DCMAKE_CUDA_ARCHITECTURES=${vt_plugin_archs} -DVT_CUTLASS_INCLUDE_DIR=${VT_CUTLASS_INCLUDE_DIR}
               -DCMAKE_INSTALL_PREFIX=${vt_ring_dest}
    BUILD_ALWAYS ON)
  add_dependencies(_C vt_ring_plugin)
else()
  message(STATUS "vibetensor: CUTLASS headers not found (pip install --no-deps nvidia-cutlass): the ring plugin "
                 "is not built")
endif()
