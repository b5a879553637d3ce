namespace StreamFarm.Server.Connections;

/// <summary>Why a connection ended; one enum for every close. Values are stable; append only.</summary>
public enum DisconnectReason
{
    None = 0,
    ClientClosed = 1,
    ClientBye = 2,
    ProtocolError = 3,
    AuthFailed = 4,
    HelloTimeout = 5,
    IdleTimeout = 6,
    SlowConsumer = 7,
    ServerFull = 8,
    ServerShutdown = 9,
    TransportError = 10,

    /// <summary>The server was paused (SIGSTOP, a frozen VM) longer than the farm's shortest verdict: what the client sent meanwhile is not applied.</summary>
    ServerPaused = 11,
}
