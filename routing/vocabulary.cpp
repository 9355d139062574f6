#include "routing/vocabulary.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "routing/iso3166.h"
#include "routing/policy.h"

namespace routing {
namespace {

// Alias -> ISO 3166-2 code, keyed by the alias upper-cased with every non-alphanumeric character
// removed ("Republic of Crimea" -> "REPUBLICOFCRIMEA", "RU-SEV" -> "RUSEV"). Only territories a
// sanctions rule tests need aliases: a misspelt ordinary country is refused, which is safe; a
// misspelt sanctioned territory that slipped through as "unknown" would not be.
struct Alias {
  std::string_view key, code;
};
constexpr Alias kAliases[] = {
    // Crimea (ISO UA-43). RU-CR is how Russian-sourced and some GeoIP data write it.
    {"RUCR", "UA-43"}, {"RUKRY", "UA-43"}, {"CRIMEA", "UA-43"}, {"KRYM", "UA-43"}, {"KRIM", "UA-43"},
    {"REPUBLICOFCRIMEA", "UA-43"}, {"AUTONOMOUSREPUBLICOFCRIMEA", "UA-43"}, {"AVTONOMNARESPUBLIKAKRYM", "UA-43"},
    {"SIMFEROPOL", "UA-43"}, {"KERCH", "UA-43"}, {"YALTA", "UA-43"},
    // Sevastopol (ISO UA-40).
    {"RUSEV", "UA-40"}, {"SEVASTOPOL", "UA-40"}, {"SEVASTOPOLCITY", "UA-40"},
    // Donetsk oblast and the so-called DNR (ISO UA-14).
    {"RUDON", "UA-14"}, {"RUDPR", "UA-14"}, {"RUDNR", "UA-14"}, {"DONETSK", "UA-14"}, {"DONETSKOBLAST", "UA-14"},
    {"DONETSKAOBLAST", "UA-14"}, {"DPR", "UA-14"}, {"DNR", "UA-14"}, {"DONETSKPEOPLESREPUBLIC", "UA-14"},
    // Luhansk oblast and the so-called LNR (ISO UA-09).
    {"RULUG", "UA-09"}, {"RULPR", "UA-09"}, {"RULNR", "UA-09"}, {"LUHANSK", "UA-09"}, {"LUGANSK", "UA-09"},
    {"LUHANSKOBLAST", "UA-09"}, {"LUHANSKAOBLAST", "UA-09"}, {"LPR", "UA-09"}, {"LNR", "UA-09"},
    {"LUHANSKPEOPLESREPUBLIC", "UA-09"},
    // Zaporizhzhia and Kherson oblasts (ISO UA-23, UA-65; blocked for EU/UK operators).
    {"RUZAP", "UA-23"}, {"ZAPORIZHZHIA", "UA-23"}, {"ZAPOROZHYE", "UA-23"}, {"ZAPORIZHIA", "UA-23"},
    {"ZAPORIZHZHIAOBLAST", "UA-23"}, {"ZAPORIZKAOBLAST", "UA-23"},
    {"RUKHE", "UA-65"}, {"KHERSON", "UA-65"}, {"KHERSONOBLAST", "UA-65"}, {"KHERSONSKAOBLAST", "UA-65"},
};

constexpr size_t kMaxRegionChars = 64;

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool letters(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}
bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<ClientRegion> refuse(std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return std::nullopt;
}

ClientRegion subdivision(std::string code) {
  ClientRegion r;
  r.country = code.substr(0, 2);
  r.subdivision = std::move(code);
  return r;
}

const std::vector<std::string>& builtin_tags() {
  // The tags the presets test (reference/compliance.md): DOJ data-security-programme categories,
  // US government-related data, EU and PRC personal data, export-controlled data.
  static const std::vector<std::string> v{
      "eu_personal",         "prc_personal",      "us_gov_related",     "ear_controlled",
      "us_dsp:genomic",      "us_dsp:biometric",  "us_dsp:geolocation", "us_dsp:health",
      "us_dsp:financial",    "us_dsp:identifiers"};
  return v;
}

const std::vector<std::string>& builtin_levels() {
  static const std::vector<std::string> v{"public", "internal", "confidential", "restricted"};
  return v;
}

void insert_sorted(std::vector<std::string>& v, std::string s) {
  auto it = std::lower_bound(v.begin(), v.end(), s);
  if (it == v.end() || *it != s) v.insert(it, std::move(s));
}

}  // namespace

std::optional<ClientRegion> parse_region(std::string_view text, std::string* why) {
  std::string_view t = trim(text);
  if (t.empty()) return ClientRegion{};
  if (t.size() > kMaxRegionChars) return refuse(why, "longer than " + std::to_string(kMaxRegionChars) + " characters");
  std::string upper, key;
  for (char c : t) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return refuse(why, "not ASCII");
    upper += static_cast<char>(std::toupper(u));
    if (std::isalnum(u)) key += static_cast<char>(std::toupper(u));
  }
  for (const Alias& a : kAliases)
    if (a.key == key) return subdivision(std::string(a.code));

  std::string_view u = upper;
  if (u.size() == 2 && letters(u)) {
    if (!is_iso3166_country(u)) return refuse(why, "'" + upper + "' is not an ISO 3166-1 alpha-2 country code");
    return ClientRegion{upper, {}};
  }
  // Country + subdivision: "UA-43"; "UA_43", "UA 43" and "UA43" only when the part after the
  // country is numeric (a run of letters after two letters could be an alpha-3 code).
  std::string code;
  if (u.size() > 3 && letters(u.substr(0, 2)) && (u[2] == '-' || u[2] == '_' || u[2] == ' ')) {
    code = std::string(u.substr(0, 2)) + "-" + std::string(u.substr(3));
  } else if (u.size() > 2 && letters(u.substr(0, 2)) && digits(u.substr(2))) {
    code = std::string(u.substr(0, 2)) + "-" + std::string(u.substr(2));
  } else if (u.size() == 3 && letters(u)) {
    return refuse(why, "'" + upper + "' looks like an ISO 3166-1 alpha-3 code; send the alpha-2 code");
  } else {
    return refuse(why, "'" + std::string(t) + "' is not an ISO 3166-1 alpha-2 code with an optional ISO 3166-2 subdivision");
  }
  if (!is_iso3166_country(std::string_view(code).substr(0, 2)))
    return refuse(why, "'" + code.substr(0, 2) + "' is not an ISO 3166-1 alpha-2 country code");
  if (!is_iso3166_subdivision(code)) return refuse(why, "'" + code + "' is not an ISO 3166-2 subdivision code");
  return subdivision(std::move(code));
}

std::string normalize_tag(std::string_view tag) {
  std::string_view t = trim(tag);
  std::string out;
  out.reserve(t.size());
  for (char c : t) out += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int classification_rank(std::string_view c) {
  const auto& levels = builtin_levels();
  for (size_t i = 0; i < levels.size(); ++i)
    if (levels[i] == c) return static_cast<int>(i);
  return static_cast<int>(levels.size());
}

DataVocabulary::DataVocabulary() {
  for (const auto& t : builtin_tags()) insert_sorted(tags_, t);
  for (const auto& c : builtin_levels()) insert_sorted(classifications_, c);
}

void DataVocabulary::add_tag(std::string_view tag) { insert_sorted(tags_, normalize_tag(tag)); }

void DataVocabulary::add_classification(std::string_view c) { insert_sorted(classifications_, normalize_tag(c)); }

bool DataVocabulary::known_tag(std::string_view t) const { return std::binary_search(tags_.begin(), tags_.end(), t); }

bool DataVocabulary::known_classification(std::string_view c) const {
  return std::binary_search(classifications_.begin(), classifications_.end(), c) || known_tag(c);
}

// Here rather than in the policy compiler: the gateway config reads tenant presets with it.
const std::vector<std::pair<std::string, uint32_t>>& preset_names() {
  static const std::vector<std::pair<std::string, uint32_t>> names{
      {"sanctioned-origin-block", 0},
      {"us-federal", kPresetUsFederal},
      {"us-regulated-enterprise", kPresetUsRegulatedEnterprise},
      {"eu-gdpr", kPresetEuGdpr},
      {"china-domestic", kPresetChinaDomestic},
      {"prc-models-local-only", kPresetPrcModelsLocalOnly},
  };
  return names;
}

std::optional<uint32_t> preset_bit(std::string_view name) {
  for (const auto& [n, bit] : preset_names())
    if (n == name) return bit;
  return std::nullopt;
}

}  // namespace routing
