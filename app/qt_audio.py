"""Sound playback for panels: QtMultimedia plays asynchronously, so the UI thread never waits on audio.
One player per panel; playing the sound that is playing stops it; a preview stops by itself."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, QUrl, Signal


class AudioPlayer(QObject):
    unavailable = Signal(str)  # why nothing can play (QtMultimedia missing)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._player: object | None = None
        self._stop = QTimer(self)
        self._stop.setSingleShot(True)
        self._stop.timeout.connect(self.stop)
        self.source = ""
        self.start_s = 0.0  # where the last play started, in seconds
        self._pending_start = 0.0

    def play(self, path: str, seconds: float | None = None, start_s: float = 0.0) -> bool:
        """Start `path` (stop it when it is the one playing, unless `start_s` asks for another moment);
        `seconds`: a preview that stops by itself; `start_s`: where to start. False when nothing plays."""
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
        except ImportError:
            self.unavailable.emit("audio playback needs QtMultimedia (PySide6-Addons)")
            return False
        player = self._player
        if not isinstance(player, QMediaPlayer):
            player = QMediaPlayer(self)
            player.setAudioOutput(QAudioOutput(self))
            player.mediaStatusChanged.connect(self._media_status)
            self._player = player
        playing = player.playbackState() == QMediaPlayer.PlaybackState.PlayingState and self.source == path
        if playing and not start_s:
            self.stop()
            return False
        reload = self.source != path or not playing
        if reload:
            self.source = path
            player.setSource(QUrl.fromLocalFile(path))
        self.start_s = start_s
        self._pending_start = start_s if reload else 0.0
        if start_s:
            player.setPosition(int(start_s * 1000))  # again once the media has loaded (see _media_status)
        player.play()
        if seconds is not None:
            self._stop.start(int(seconds * 1000))
        return True

    def _media_status(self, status: object) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        loaded = (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia)
        if self._pending_start and status in loaded and isinstance(self._player, QMediaPlayer):
            self._player.setPosition(int(self._pending_start * 1000))
            self._pending_start = 0.0

    def stop(self) -> None:
        self._stop.stop()
        player = self._player
        if player is not None:
            player.stop()  # type: ignore[attr-defined]
        self.source = ""
