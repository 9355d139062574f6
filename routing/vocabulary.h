#pragma once
// One vocabulary for the request facts that compliance rules test: client regions (ISO 3166) and
// data tags / classifications. Requests, tenant settings and policies are all read through it, so a
// spelling that one accepts the others accept too, and a spelling none knows is refused instead of
// silently matching nothing (an unknown value would otherwise make every rule that tests it pass).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace routing {

// A validated client region: country "DE", subdivision "UA-43" (empty when none).
struct ClientRegion {
  std::string country;
  std::string subdivision;
  bool empty() const { return country.empty(); }
  std::string text() const { return subdivision.empty() ? country : subdivision; }
  bool operator==(const ClientRegion&) const = default;
};

// Reads a client region as clients, tenants and GeoIP front-ends write it: ISO 3166-1 alpha-2,
// optionally with an ISO 3166-2 subdivision ("UA-43"), case-insensitive, surrounding whitespace
// ignored, '_' or no separator accepted before a numeric subdivision ("UA_43", "UA43"). The known
// aliases of sanctioned territories map to their ISO code: Crimea (RU-CR, "Crimea", Simferopol,
// Kerch) -> UA-43, Sevastopol (RU-SEV) -> UA-40, and the occupied oblasts by name or by the codes
// Russia assigned them. Anything else (alpha-3 codes, country names, unknown codes) is nullopt,
// with `why` saying what was wrong. Blank text is an empty region (nothing known).
std::optional<ClientRegion> parse_region(std::string_view text, std::string* why = nullptr);

// Canonical spelling of a data tag or classification: trimmed, lower-case, '-' read as '_'
// ("EU-Personal" -> "eu_personal", "US_DSP:HEALTH" -> "us_dsp:health").
std::string normalize_tag(std::string_view tag);

// Sensitivity order of classifications, for "headers may only make it stricter": public 0,
// internal 1, confidential 2, restricted 3; every other classification (a regulated data tag such
// as eu_personal, or one a policy declares) counts as the strictest, 4.
int classification_rank(std::string_view normalized);

// The data tags and classifications a policy may use and a request may send: the built-in ones the
// presets test, plus those a policy declares under `vocabulary:`. Names are normalized.
class DataVocabulary {
 public:
  DataVocabulary();  // the built-in vocabulary

  void add_tag(std::string_view tag);
  void add_classification(std::string_view classification);
  // `normalized` must already be normalize_tag()-ed.
  bool known_tag(std::string_view normalized) const;
  // Classifications include every data tag: a request classified `eu_personal` carries that tag.
  bool known_classification(std::string_view normalized) const;
  const std::vector<std::string>& tags() const { return tags_; }
  const std::vector<std::string>& classifications() const { return classifications_; }

 private:
  std::vector<std::string> tags_, classifications_;  // sorted, unique
};

}  // namespace routing
