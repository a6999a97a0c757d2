// Bench only (dev addon): the CPU's practical FMA peak the model bench divides by.
#pragma once
#include <string>

namespace xopd {
namespace model {

struct PeakResult {
  double flops = 0;  // FLOP/s over all workers (a fused multiply-add counts 2)
  int threads = 0;
  std::string kernel;
};

// Runs for about `seconds` on ThreadCount() workers.
PeakResult MeasurePeak(double seconds);

}  // namespace model
}  // namespace xopd
