// Version of the MOVE SDK, recorded in every artefact it writes.
#ifndef MOVE_SDK_VERSION_H_
#define MOVE_SDK_VERSION_H_

namespace move {

inline constexpr char kSdkVersion[] = "0.1.0";

}  // namespace move

#endif  // MOVE_SDK_VERSION_H_
