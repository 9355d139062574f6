#pragma once
// ISO 3166 code tables (routing/iso3166.cpp, generated data): the only country and subdivision
// codes a client region may name. Codes are upper-case ("DE", "UA-43").
#include <string_view>

namespace routing {

bool is_iso3166_country(std::string_view alpha2);
bool is_iso3166_subdivision(std::string_view code);

}  // namespace routing
