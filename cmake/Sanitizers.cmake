# THINKMESH_SANITIZE turns on ASan + UBSan for everything built after this point.
if(THINKMESH_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# THINKMESH_BUILD_FUZZ (clang only): the libraries are instrumented for libFuzzer's coverage
# plus ASan/UBSan; fuzz/ links each target with -fsanitize=fuzzer.
if(THINKMESH_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "THINKMESH_BUILD_FUZZ needs clang (use the `fuzz` preset)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
