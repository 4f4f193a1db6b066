// Precompiled for every test executable: the heavy third-party headers, parsed once per build.
#pragma once
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <nlohmann/json.hpp>
#include "support/catch.hpp"
