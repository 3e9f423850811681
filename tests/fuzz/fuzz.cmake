# tests/fuzz/fuzz.cmake — the parser harnesses (included from the top CMakeLists.txt).
# With -DLORAJIT_FUZZ=ON (clang): fuzz_NAME links libFuzzer; `make fuzz` builds them
# all; tests/fuzz/run.sh runs each for N seconds. Otherwise fuzz_NAME gets replay.c's
# main() and ctest replays tests/fuzz/corpus/NAME and tests/fuzz/regressions/NAME
# through it (so the sanitizer pass of tests/run.sh replays them under ASan + UBSan).
set(FUZZ_HARNESSES safetensors config peft_config schema shard_index script manifest elf tokenizer_json encode template)
set(FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
if(LORAJIT_FUZZ AND NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "LORAJIT_FUZZ needs clang: cmake -DCMAKE_C_COMPILER=clang -DLORAJIT_FUZZ=ON")
endif()
set(FUZZ_TARGETS)
foreach(h ${FUZZ_HARNESSES})
  set(srcs ${FUZZ_DIR}/fuzz_${h}.c)
  if(h STREQUAL "script")
    list(APPEND srcs ${CMAKE_SOURCE_DIR}/examples/script_parse.c)
  endif()
  if(NOT LORAJIT_FUZZ)
    list(APPEND srcs ${FUZZ_DIR}/replay.c)
  endif()
  add_executable(fuzz_${h} EXCLUDE_FROM_ALL ${srcs})
  target_include_directories(fuzz_${h} PRIVATE ${FUZZ_DIR} ${CMAKE_SOURCE_DIR}/examples ${RT_INCLUDE_DIRS}
                             ${CMAKE_SOURCE_DIR} ${CJSON_INCLUDE_DIR})
  target_link_libraries(fuzz_${h} PRIVATE lorajit_rt)
  if(h STREQUAL "tokenizer_json" OR h STREQUAL "encode")  # tokenizer/: its room header, its test inputs
    target_include_directories(fuzz_${h} PRIVATE ${CMAKE_SOURCE_DIR}/tokenizer)
    target_compile_definitions(fuzz_${h} PRIVATE _GNU_SOURCE FUZZ_TOKENIZER_DIR="${CMAKE_SOURCE_DIR}/tests/tokenizer")
  endif()
  if(LORAJIT_FUZZ)
    target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer)
  else()
    set_target_properties(fuzz_${h} PROPERTIES EXCLUDE_FROM_ALL OFF)
    add_test(NAME fuzz_replay_${h} COMMAND fuzz_${h} ${FUZZ_DIR}/corpus/${h} ${FUZZ_DIR}/regressions/${h})
  endif()
  list(APPEND FUZZ_TARGETS fuzz_${h})
endforeach()
add_custom_target(fuzz DEPENDS ${FUZZ_TARGETS})
