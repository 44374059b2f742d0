# ASan + UBSan for the whole tree (PGCUTOVER_SANITIZE=ON); CI runs the suite once this way.
if(PGCUTOVER_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # GCC 12 reports false -Wmaybe-uninitialized inside libstdc++ (std::regex's std::function)
  # once ASan instruments it; the regular build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
endif()

# Fuzz builds instrument everything they link (coverage for libFuzzer, ASan/UBSan for crashes).
if(PGCUTOVER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PGCUTOVER_FUZZ=ON needs clang: -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
endif()
