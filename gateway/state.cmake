# Gateway state: tenants and keys, spend ledger (SQLite), budgets and rate limits
# (in process or Redis), response cache. Included from gateway/CMakeLists.txt.
find_package(SQLite3 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

add_library(gw_state STATIC
  ${CMAKE_CURRENT_LIST_DIR}/tenants.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ledger.cpp
  ${CMAKE_CURRENT_LIST_DIR}/limits.cpp
  ${CMAKE_CURRENT_LIST_DIR}/redis_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/limits_redis.cpp
  ${CMAKE_CURRENT_LIST_DIR}/response_cache.cpp
)
target_include_directories(gw_state PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(gw_state PUBLIC gw_core gw_routing yaml-cpp SQLite::SQLite3 OpenSSL::Crypto PkgConfig::HIREDIS Threads::Threads)
