// switchboard/switchboard.hpp: the umbrella header. Includes every public header of the library.
// Prefer the individual headers in your own code to keep compile times low.
#pragma once

#include <switchboard/version.hpp>

#include <switchboard/core/async_queue.hpp>
#include <switchboard/core/bounded_queue.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/core/overflow_policy.hpp>
