using Microsoft.Extensions.Logging;

namespace StreamFarm.Server;

public sealed partial class StreamFarmNode
{
    private static partial class Log
    {
        /// <summary>The trace behind the one-line error the caller prints (a port in use, for example).</summary>
        [LoggerMessage(EventId = 4001, Level = LogLevel.Debug, Message = "the server could not start")]
        public static partial void StartFailed(ILogger logger, Exception exception);
    }
}
