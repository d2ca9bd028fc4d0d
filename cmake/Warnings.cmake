# Warnings applied to every thinkmesh target through thinkmesh_warnings.
add_library(thinkmesh_warnings INTERFACE)
target_compile_options(thinkmesh_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow=local -Wno-unused-parameter -Wno-missing-field-initializers)
