# One place for compiler warnings: every target of ours calls pgcutover_warnings().
function(pgcutover_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow=local -Wno-unused-parameter)
endfunction()
